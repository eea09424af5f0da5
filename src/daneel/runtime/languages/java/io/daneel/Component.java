package io.daneel;

import java.util.List;
import java.util.Map;

/**
 * A component daneel serves: implement the methods you need; the others keep these defaults.
 *
 * <p>Data arrives as rows of numbers ({@code double[][]}) with their column names (empty when the
 * request named none). Methods may be called from several threads at once. A method that throws
 * answers the request with a 500 that names the exception and its message.
 */
public interface Component {
    /** Called once, after the no-argument constructor, with the folder's parameters. */
    default void init(Map<String, Object> parameters) throws Exception {}

    default double[][] predict(double[][] X, String[] names) throws Exception {
        throw new UnsupportedOperationException("predict");
    }

    default double[][] transform_input(double[][] X, String[] names) throws Exception {
        return X;
    }

    default double[][] transform_output(double[][] X, String[] names) throws Exception {
        return X;
    }

    /** The index of the child the request goes to. */
    default int route(double[][] X, String[] names) throws Exception {
        throw new UnsupportedOperationException("route");
    }

    /** One answer from the children's, each with its names. */
    default double[][] aggregate(List<double[][]> Xs, List<String[]> names) throws Exception {
        throw new UnsupportedOperationException("aggregate");
    }

    /** A reward for an earlier request; truth and routing may be null. */
    default void send_feedback(double[][] X, String[] names, double reward, double[][] truth, Integer routing)
            throws Exception {}

    /** Tags added to each answer's meta. */
    default Map<String, Object> tags() {
        return null;
    }

    /** Metrics reported with each answer: maps of type (COUNTER, GAUGE, TIMER), key and value. */
    default List<Map<String, Object>> metrics() {
        return null;
    }

    /** What /health/status reports; throw to say the component is unhealthy. */
    default Object health_status() throws Exception {
        return null;
    }

    /** The metadata both protocols report: name, versions, platform, inputs, outputs. */
    default Map<String, Object> init_metadata() throws Exception {
        return null;
    }

    /** The names of the answer's columns. */
    default String[] class_names() {
        return null;
    }
}
